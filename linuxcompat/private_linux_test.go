//go:build linux && amd64

package linuxcompat

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestCapturePrivateOpenSSLCopy: a process using its own copy of libssl (a
// different inode, as with pyenv/conda/container builds) is probed through
// that copy: found by /proc/PID/maps when it was running before the sensor,
// and by the mmap of the new inode when it starts after.
func TestCapturePrivateOpenSSLCopy(t *testing.T) {
	py := needTool(t, "python3")
	var libDir string
	for _, d := range []string{"/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64"} {
		if _, err := os.Stat(filepath.Join(d, "libssl.so.3")); err == nil {
			libDir = d
			break
		}
	}
	if libDir == "" {
		t.Skip("libssl.so.3 not installed")
	}
	script := `import sys, ssl, urllib.request
sys.stdin.readline()
ctx = ssl.create_default_context(cafile=sys.argv[2])
req = urllib.request.Request(sys.argv[1], data=sys.argv[3].encode(), method="POST")
sys.stdout.write(urllib.request.urlopen(req, context=ctx).read().decode())`
	for _, tc := range []struct {
		name         string
		beforeSensor bool
		overlay      bool
	}{
		{"started after the sensor (mmap of a new inode)", false, false},
		{"running before the sensor (/proc/PID/maps)", true, false},
		{"on overlayfs like a container layer", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			private := t.TempDir()
			for _, lib := range []string{"libssl.so.3", "libcrypto.so.3"} {
				raw, err := os.ReadFile(filepath.Join(libDir, lib))
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(private, lib), raw, 0o755)
			}
			if tc.overlay {
				private = overlayMount(t, private)
			}
			srv := newTLSServer(t, false)
			body := []byte("private openssl copy")
			cmd := exec.Command(py, "-c", script, srv.URL+"/private", srv.caFile, string(body))
			cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+private)
			stdin, _ := cmd.StdinPipe()
			var out bytes.Buffer
			cmd.Stdout = &out
			cmd.Stderr = os.Stderr
			start := func() {
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
			}
			pids := []int{os.Getpid()}
			if tc.beforeSensor {
				start()
				pids = append(pids, cmd.Process.Pid)
				// Make sure the copy is mapped before the sensor scans.
				waitFor(t, "the private libssl mapping", 10*time.Second, func() bool {
					raw, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/maps")
					return bytes.Contains(raw, []byte(filepath.Join(private, "libssl.so.3")))
				})
			}
			src, rec := startSource(t, Config{PIDs: pids})
			if !tc.beforeSensor {
				start()
			}
			a := waitAttached(t, src, filepath.Join(private, "libssl.so.3"))
			if a.Library != "openssl" {
				t.Errorf("attachment = %+v", a)
			}
			io.WriteString(stdin, "go\n")
			if err := cmd.Wait(); err != nil {
				t.Fatalf("python: %v", err)
			}
			if !bytes.Equal(out.Bytes(), responseFor("POST", "/private", body)) {
				t.Fatalf("python got %q", out.Bytes())
			}
			checkHTTP1Exchange(t, rec, cmd.Process.Pid, "POST", "/private", body)
		})
	}
}

// overlayMount mounts an overlayfs with lower as its lower layer and returns
// the merged directory (unmounted at cleanup). It skips when overlayfs
// cannot be mounted here.
func overlayMount(t *testing.T, lower string) string {
	t.Helper()
	base := t.TempDir()
	upper, work, merged := filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged")
	for _, d := range []string{upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if err := syscall.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Skipf("cannot mount overlayfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(merged, syscall.MNT_DETACH) })
	return merged
}
