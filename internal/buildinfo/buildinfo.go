// Package buildinfo says which build of opsworker is running: the
// version given at link time (make sets it from git describe), else the
// module version Go recorded (a `go install …@v0.1.0` build), else "dev";
// and the VCS revision Go recorded, when it did.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at link time: -ldflags "-X github.com/opsworker/opsworker/internal/buildinfo.version=v0.1.0".
var version = ""

// Info describes the running build.
type Info struct {
	Version   string
	Revision  string
	GoVersion string
}

// Get returns the running build's Info.
func Get() Info {
	info := Info{Version: version, GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				info.Revision = s.Value
			}
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	return info
}

// Version is Get().Version.
func Version() string { return Get().Version }

// String is the one line `--version` prints: name, version, revision (12
// characters) and Go version.
func (i Info) String() string {
	rev := i.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		rev = "unknown"
	}
	return fmt.Sprintf("%s (revision %s, %s)", i.Version, rev, i.GoVersion)
}
