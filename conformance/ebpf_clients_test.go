package conformance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oisp/oisp-sensor/sensor/capture/loopback"
)

// TestProcessClientsFailOnWrongBytes shows that each client program of the
// eBPF paths checks what it received: served one response while expecting
// the recorded other, it fails; served the recorded one, it passes. No
// eBPF is involved: the programs run against the loopback server, held
// until the Started hook has seen their pid.
func TestProcessClientsFailOnWrongBytes(t *testing.T) {
	type client struct {
		name    string
		tr      loopback.Transport
		need    func() string
		prepare func() (ebpfPrepared, error)
	}
	clients := []client{
		{"curl h1", loopback.H1, CurlMissing, prepareCurl(false)},
		{"curl h2", loopback.H2, CurlMissing, prepareCurl(true)},
		{"python urllib", loopback.H1, pythonMissing, preparePython},
		{"node fetch", loopback.H1, nodeMissing, prepareNode("fetch", true)},
		{"node http2", loopback.H2, nodeMissing, prepareNode("http2", false)},
		{"node openai", loopback.H1, nodeMissing, prepareNode("openai", true)},
		{"go h1 (openai-go for chat)", loopback.H1, goMissing, prepareGo(false, false)},
		{"go h2 stripped", loopback.H2, goMissing, prepareGo(true, true)},
	}
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			if why := c.need(); why != "" {
				t.Skip(why)
			}
			prep, err := c.prepare()
			if err != nil {
				t.Fatalf("prepare: %v", err)
			}
			var pids []int
			drv := prep.driver(func(pid int) error {
				// Held: the process is still the shell, not the client.
				// (Its command line reads empty for a moment while the
				// shell's exec completes.)
				var cmdline []byte
				for deadline := time.Now().Add(2 * time.Second); len(cmdline) == 0 && time.Now().Before(deadline); {
					cmdline, _ = os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
					if len(cmdline) == 0 {
						time.Sleep(5 * time.Millisecond)
					}
				}
				if !strings.Contains(string(cmdline), "oisp-held-client") {
					return fmt.Errorf("pid %d runs %q before its release", pid, cmdline)
				}
				pids = append(pids, pid)
				return nil
			})
			vs := chatVerdicts()
			checkVerdicts(t, vs, against(c.tr, drv))
			// Every run started one held program, seen by Started.
			if len(pids) != len(vs) {
				t.Errorf("Started saw pids %v, want one for each of %d runs", pids, len(vs))
			}
		})
	}
}

// TestRunHeldReleasesOnlyAfterStarted: the program must not run before
// the hook returns, and a hook error stops it from ever running.
func TestRunHeldReleasesOnlyAfterStarted(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	argv := []string{"/bin/sh", "-c", "echo ran > " + marker}
	_, err := runHeld(context.Background(), argv, nil, "", nil, func(int) error {
		time.Sleep(200 * time.Millisecond)
		if _, err := os.Stat(marker); err == nil {
			t.Error("the program ran before Started returned")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("the program did not run after its release")
	}
	os.Remove(marker)
	_, err = runHeld(context.Background(), argv, nil, "", nil, func(int) error { return fmt.Errorf("refused") })
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("hook error not returned: %v", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the program ran although Started failed")
	}
}
