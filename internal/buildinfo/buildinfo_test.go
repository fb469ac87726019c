package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

func TestLinkTimeVersionWins(t *testing.T) {
	old := version
	t.Cleanup(func() { version = old })
	version = "v9.9.9"
	if got := Get(); got.Version != "v9.9.9" || got.GoVersion != runtime.Version() {
		t.Fatalf("Get() = %+v, want the -X version and this Go", got)
	}
	version = ""
	if got := Version(); got == "" {
		t.Fatal("Version() is empty; want the module's or dev")
	}
}

func TestString(t *testing.T) {
	s := Info{Version: "v0.1.0", Revision: "0123456789abcdef", GoVersion: "go1.26"}.String()
	if s != "v0.1.0 (revision 0123456789ab, go1.26)" {
		t.Fatalf("String() = %q", s)
	}
	if !strings.Contains(Info{Version: "dev"}.String(), "revision unknown") {
		t.Fatal("a build without VCS data says so")
	}
}
