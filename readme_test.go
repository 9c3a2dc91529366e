package sessions_test

import (
	"bufio"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tokyopredictor/sessions"
)

// The README's Go snippets are not tested from the README: each one is
// mirrored, line for line, between the markers
//
//	// README:begin NAME
//	// README:end
//
// in a .go file of a module of the workspace (go.work), where `go vet work`
// and `go test work` compile it and, mostly, run it. TestReadmeSnippets
// holds the two together: every ```go block of README.md must equal some
// marked region (indentation aside), and every marked region must still be
// in README.md. To change a snippet, change both.

const (
	regionBegin = "// README:begin "
	regionEnd   = "// README:end"
)

// snippet is a fenced block of README.md or a marked region of a .go file.
type snippet struct {
	where string // file:line
	name  string // the region's name; the block's language
	text  string // dedented, without leading or trailing blank lines
}

// readmeBlocks returns the fenced code blocks of a Markdown text.
func readmeBlocks(t *testing.T, path string) []snippet {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		out    []snippet
		in     bool
		indent string
		cur    snippet
		lines  []string
	)
	for i, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimLeft(line, " ")
		if !in {
			// An opening fence: three backticks and an info string without
			// one (CommonMark), so inline code such as ```` ```go ```` is not.
			if strings.HasPrefix(trimmed, "```") && !strings.Contains(strings.TrimLeft(trimmed, "`"), "`") {
				in, indent = true, line[:len(line)-len(trimmed)]
				cur = snippet{where: fmt.Sprintf("%s:%d", path, i+1), name: strings.TrimSpace(trimmed[3:])}
				lines = nil
			}
			continue
		}
		if strings.TrimSpace(line) == "```" {
			in = false
			cur.text = tidyLines(lines)
			out = append(out, cur)
			continue
		}
		lines = append(lines, strings.TrimPrefix(line, indent))
	}
	if in {
		t.Fatalf("%s: unterminated code block", cur.where)
	}
	return out
}

// tidyLines joins lines without their common leading whitespace, trailing
// blanks, or leading and trailing empty lines.
func tidyLines(lines []string) string {
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " \t\r")
	}
	for len(lines) > 0 && lines[0] == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	var common string
	first := true
	for _, l := range lines {
		if l == "" {
			continue
		}
		lead := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if first {
			common, first = lead, false
			continue
		}
		for !strings.HasPrefix(lead, common) {
			common = common[:len(common)-1]
		}
	}
	for i := range lines {
		lines[i] = strings.TrimPrefix(lines[i], common)
	}
	return strings.Join(lines, "\n")
}

// workspaceModules returns the directories go.work uses, cleaned.
func workspaceModules(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("go.work")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, f := range strings.Fields(string(b)) {
		if f == "." || strings.HasPrefix(f, "./") {
			dirs = append(dirs, filepath.Clean(f))
		}
	}
	if !slices.Contains(dirs, ".") {
		t.Fatalf("go.work does not use the root module: %q", b)
	}
	return dirs
}

// moduleOf returns the directory of the go.mod nearest above the file.
func moduleOf(file string) string {
	for dir := filepath.Dir(file); ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil || dir == "." {
			return dir
		}
	}
}

// markedRegions returns every README region of the repository's .go files.
// A region must sit where the workspace compiles it: in a module go.work
// uses, outside testdata, in a file without build constraints.
func markedRegions(t *testing.T) []snippet {
	t.Helper()
	modules := workspaceModules(t)
	var out []snippet
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		var (
			found    []snippet
			cur      *snippet
			lines    []string
			n        int
			hasBuild bool
		)
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			n++
			line := sc.Text()
			trimmed := strings.TrimSpace(line)
			switch {
			case strings.HasPrefix(trimmed, "//go:build"):
				hasBuild = true
			case strings.HasPrefix(trimmed, regionBegin):
				if cur != nil {
					t.Errorf("%s:%d: README region %q opened inside %q", path, n, trimmed, cur.name)
				}
				cur = &snippet{where: fmt.Sprintf("%s:%d", path, n), name: strings.TrimPrefix(trimmed, regionBegin)}
				lines = nil
			case trimmed == regionEnd:
				if cur == nil {
					t.Errorf("%s:%d: README region end without a begin", path, n)
					continue
				}
				cur.text = tidyLines(lines)
				found = append(found, *cur)
				cur = nil
			case cur != nil:
				lines = append(lines, line)
			}
		}
		if cur != nil {
			t.Errorf("%s: README region %q not closed", cur.where, cur.name)
		}
		if len(found) > 0 && hasBuild {
			t.Errorf("%s: README regions in a file with build constraints may never be compiled", path)
		}
		if mod := moduleOf(path); len(found) > 0 && !slices.Contains(modules, mod) {
			t.Errorf("%s: README regions in module %s, which go.work does not use (so nothing compiles them)", path, mod)
		}
		out = append(out, found...)
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReadmeSnippets(t *testing.T) {
	blocks := readmeBlocks(t, "README.md")
	regions := markedRegions(t)

	byText := make(map[string][]snippet)
	for _, r := range regions {
		byText[r.text] = append(byText[r.text], r)
	}
	names := make(map[string]string)
	for _, r := range regions {
		if prev, dup := names[r.name]; dup {
			t.Errorf("%s: README region name %q is also used at %s", r.where, r.name, prev)
		}
		names[r.name] = r.where
	}

	inReadme := make(map[string]bool)
	goBlocks := 0
	for _, b := range blocks {
		switch b.name {
		case "go":
			goBlocks++
			inReadme[b.text] = true
			if len(byText[b.text]) == 0 {
				t.Errorf("%s: this go block is mirrored in no compiled .go file. Copy it, unchanged, "+
					"between %q and %q lines in a file of a workspace module (an Example, a test, or a "+
					"package under internal/readme), where it compiles:\n%s", b.where, regionBegin+"NAME", regionEnd, b.text)
			}
		case "json":
			// A JSON block is a config file: LoadConfig must take it.
			path := filepath.Join(t.TempDir(), "config.json")
			if err := os.WriteFile(path, []byte(b.text), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := sessions.LoadConfig(path); err != nil {
				t.Errorf("%s: LoadConfig refuses this JSON block: %v", b.where, err)
			}
		}
	}
	for _, r := range regions {
		if !inReadme[r.text] {
			t.Errorf("%s: README region %q is in no go block of README.md: change both together", r.where, r.name)
		}
	}
	// The extraction itself: a README without go blocks, or a walk that
	// finds no region, would make everything above pass vacuously.
	if goBlocks < 5 || len(regions) < goBlocks {
		t.Errorf("found %d go blocks in README.md and %d marked regions: the extraction is broken", goBlocks, len(regions))
	}
}

// TestTwoAppsWithOneCookieName backs what the README says of two apps on
// one host: with the same cookie name, signing in to one signs the user
// out of the other (each takes the other's cookie for a forged one and
// expires it); Example_twoAppsOnOneHost shows distinct names keep both.
func TestTwoAppsWithOneCookieName(t *testing.T) {
	var apps [2]*sessions.Manager
	for i := range apps {
		m, err := sessions.NewManager(sessions.Config{}, quiet())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		apps[i] = m
	}
	srv := [2]*httptest.Server{}
	for i, m := range apps {
		mux := http.NewServeMux()
		mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
			if _, err := m.Start(w, r, "alice", nil); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
			}
		})
		mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
			if _, ok := sessions.FromContext(r.Context()); !ok {
				http.Error(w, "signed out", http.StatusUnauthorized)
			}
		})
		srv[i] = httptest.NewTLSServer(m.Middleware(mux)) // 127.0.0.1, two ports
		t.Cleanup(srv[i].Close)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: srv[0].Client().Transport, Jar: jar}
	status := func(method, url string) int {
		t.Helper()
		req, err := http.NewRequest(method, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := status("POST", srv[0].URL+"/login"); got != http.StatusOK {
		t.Fatalf("login to app 1: %d", got)
	}
	if got := status("GET", srv[0].URL+"/"); got != http.StatusOK {
		t.Fatalf("app 1 after its login: %d", got)
	}
	// App 2 gets app 1's cookie (cookies ignore ports), cannot verify it and
	// expires it: the user is signed out of app 1.
	if got := status("GET", srv[1].URL+"/"); got != http.StatusUnauthorized {
		t.Fatalf("app 2 with app 1's cookie: %d", got)
	}
	if got := status("GET", srv[0].URL+"/"); got != http.StatusUnauthorized {
		t.Fatalf("app 1 after a visit to app 2: %d, want 401 (the README says they log each other out)", got)
	}
}

// TestWorkspaceListsEveryModule: a module of the repository that go.work
// does not use is compiled and tested by nothing (`go test work` names the
// workspace's packages only), and its README regions would pass unseen.
func TestWorkspaceListsEveryModule(t *testing.T) {
	used := workspaceModules(t)
	var found []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && d.Name() == "go.mod" {
			found = append(found, filepath.Dir(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range found {
		if !slices.Contains(used, dir) {
			t.Errorf("%s/go.mod: a module go.work does not use; add it (go work use ./%s)", dir, dir)
		}
	}
	for _, dir := range used {
		if !slices.Contains(found, dir) {
			t.Errorf("go.work uses %s, which has no go.mod", dir)
		}
	}
	if len(found) < 2 {
		t.Errorf("found the modules %q only: the walk is broken", found)
	}
}

// TestCIRunsTheReadmeTestCommand: .ci/run ends with exactly the test
// command the README gives.
func TestCIRunsTheReadmeTestCommand(t *testing.T) {
	var readmeCmd string
	for _, b := range readmeBlocks(t, "README.md") {
		if b.name != "sh" {
			continue
		}
		for _, line := range strings.Split(b.text, "\n") {
			if cmd, _, _ := strings.Cut(line, "#"); strings.HasPrefix(cmd, "go test ") {
				readmeCmd = strings.TrimSpace(cmd)
				break
			}
		}
		if readmeCmd != "" {
			break
		}
	}
	if readmeCmd == "" {
		t.Fatal("no go test command in README.md's sh blocks")
	}
	ci, err := os.ReadFile(".ci/run")
	if err != nil {
		t.Fatal(err)
	}
	var last string
	for _, line := range strings.Split(string(ci), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			last = line
		}
	}
	if last != readmeCmd {
		t.Errorf(".ci/run ends with %q; the README's test command is %q", last, readmeCmd)
	}
}
