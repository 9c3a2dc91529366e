package sessions

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// idSealer encrypts session IDs for stores that must not keep them in the
// clear (Record.SealedID). Keys[0] seals; every key unseals, so sealed IDs
// survive a key rotation.
type idSealer struct {
	aeads []cipher.AEAD
}

func newIDSealer(keys [][]byte) (*idSealer, error) {
	s := &idSealer{}
	for _, k := range keys {
		dk, err := hkdf.Key(sha256.New, k, nil, "github.com/tokyopredictor/sessions id seal v1", 32)
		if err != nil {
			return nil, err
		}
		block, err := aes.NewCipher(dk)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		s.aeads = append(s.aeads, aead)
	}
	return s, nil
}

func (s *idSealer) seal(id string) ([]byte, error) {
	a := s.aeads[0]
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(id)+a.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("sessions: sealing ID: %w", err)
	}
	return a.Seal(nonce, nonce, []byte(id), nil), nil
}

var errUnseal = errors.New("sessions: sealed ID does not open with any key")

func (s *idSealer) unseal(b []byte) (string, error) {
	for _, a := range s.aeads {
		if len(b) < a.NonceSize() {
			break
		}
		if id, err := a.Open(nil, b[:a.NonceSize()], b[a.NonceSize():], nil); err == nil {
			return string(id), nil
		}
	}
	return "", errUnseal
}
