package sessions

import "slices"

// Value returns the value stored in s under key and true if there is one of
// type T; else the zero T and false. It is Session.Get without the type
// assertion:
//
//	name, _ := sessions.Value[string](s, "name")
//	when, ok := sessions.Value[time.Time](s, "signed_in")
//
// Values come back with the Go type they were written with, on every store,
// so T is that type: a value Set as an int is not a Value[int64]. T may be
// an interface type (Value[fmt.Stringer]).
func Value[T any](s *Session, key string) (T, bool) {
	v, _ := s.Get(key)
	t, ok := v.(T)
	return t, ok
}

// Pop returns the value stored in s under key, as Value does, and deletes
// it in the same step: a read-once value, such as a flash message shown on
// the next page. A value of another type than T is neither returned nor
// deleted.
//
// On the memory store, of several requests popping one key at once exactly
// one gets it. On a shared store each request works on its own copy of the
// session, loaded when the request began, and the deletion is saved with
// the request's other changes: two requests of one session that run at the
// same time may both get the value. A flash message shown twice is the
// usual worst case; do not use Pop for anything that must be used once
// (a one-time token belongs in a store of its own).
func Pop[T any](s *Session, key string) (T, bool) {
	var zero T
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.find(key)
	if i < 0 {
		return zero, false
	}
	t, ok := s.data[i].val.(T)
	if !ok {
		return zero, false
	}
	s.data = slices.Delete(s.data, i, i+1)
	s.markDirty(key)
	return t, true
}
