//go:build !lean

package config

import (
	"testing"

	"github.com/fsnotify/fsnotify"
)

// TestWatcherConcerns: only changes that can change the configuration make the watcher read the file again; a
// log written beside it, once per admission, does not.
func TestWatcherConcerns(t *testing.T) {
	w := &Watcher{path: "/etc/attest/policies.yaml"}
	tests := []struct {
		name string
		ev   fsnotify.Event
		want bool
	}{
		{"the file written", fsnotify.Event{Name: "/etc/attest/policies.yaml", Op: fsnotify.Write}, true},
		{"the file renamed into place", fsnotify.Event{Name: "/etc/attest/policies.yaml", Op: fsnotify.Create}, true},
		{"the file removed", fsnotify.Event{Name: "/etc/attest/policies.yaml", Op: fsnotify.Remove}, true},
		{"a path spelled otherwise", fsnotify.Event{Name: "/etc/attest/./policies.yaml", Op: fsnotify.Write}, true},
		{"ConfigMap ..data swapped", fsnotify.Event{Name: "/etc/attest/..data", Op: fsnotify.Create}, true},
		{"ConfigMap ..data_tmp made", fsnotify.Event{Name: "/etc/attest/..data_tmp", Op: fsnotify.Create}, true},
		{"ConfigMap version directory", fsnotify.Event{Name: "/etc/attest/..2026_12_05_10_00_00.123", Op: fsnotify.Create}, true},
		{"a cedar policy beside it", fsnotify.Event{Name: "/etc/attest/mfa.cedar", Op: fsnotify.Write}, true},
		{"a log beside it", fsnotify.Event{Name: "/etc/attest/serve.log", Op: fsnotify.Write}, false},
		{"an editor's temporary file", fsnotify.Event{Name: "/etc/attest/.policies.yaml.swp", Op: fsnotify.Write}, false},
		{"another yaml file", fsnotify.Event{Name: "/etc/attest/other.yaml", Op: fsnotify.Write}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := w.concerns(tt.ev); got != tt.want {
				t.Errorf("concerns(%v) = %v, want %v", tt.ev, got, tt.want)
			}
		})
	}
}
