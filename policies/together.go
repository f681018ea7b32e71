package policies

import (
	"slices"
	"strings"
)

// sharedPaths are the paths below one part of the object (resource or old_resource) that several policies of an
// admission read, each only some of it: one pruned object holding all of them serves every one of those policies
// (members, by their paths' key), rather than one pruned object each. A policy cannot tell: its rules read only
// its own paths, which the shared object holds whole, exactly as its own would.
type sharedPaths struct {
	paths   [][]string // sorted, none a prefix of another
	key     string
	members []string // the belowKey of each policy the paths cover
}

// covers reports whether the policy whose paths' key is key is one of the members.
func (s *sharedPaths) covers(key string) bool { return slices.Contains(s.members, key) }

// togetherMax is how many policies an engine's masks can name (one bit each).
const togetherMax = 64

// ReadTogether tells the document which of engine's policies are about to read it (bit i of which:
// engine.Policies()[i]), so that those reading only some of the object share one pruned object of it. The
// policies are compiled now if they are not yet (they are about to run). Call it before they are evaluated; an
// engine of more than 64 policies leaves each policy its own pruned object.
func (d *Document) ReadTogether(e *Engine, which uint64) {
	if len(e.policies) > togetherMax {
		return
	}
	if v, ok := e.together.Load(which); ok {
		d.shared = v.(*[numParts]*sharedPaths)
		return
	}
	shared := e.sharedPaths(which)
	e.together.Store(which, shared)
	d.shared = shared
}

// sharedPaths works out, for each part of the object, the paths the policies of which read of it together (nil
// when fewer than two of them read only some of it).
func (e *Engine) sharedPaths(which uint64) *[numParts]*sharedPaths {
	var out [numParts]*sharedPaths
	for _, part := range []int{partResource, partOldResource} {
		var paths [][]string
		var members []string
		for i, p := range e.policies {
			if which&(1<<i) == 0 || p.ev != nil {
				continue
			}
			c, err := p.compiled()
			if err != nil || c.reads.all || len(c.reads.below[part]) == 0 || slices.Contains(members, c.reads.belowKey[part]) {
				continue
			}
			members = append(members, c.reads.belowKey[part])
			paths = append(paths, c.reads.below[part]...)
		}
		if len(members) < 2 {
			continue
		}
		paths = minimalPaths(paths)
		out[part] = &sharedPaths{paths: paths, key: belowKey(part, paths), members: members}
	}
	return &out
}

// belowKey names a part's paths below it: the key of its pruned object in a document (see pruned).
func belowKey(part int, paths [][]string) string {
	var key strings.Builder
	key.WriteString(documentParts[part])
	for _, p := range paths {
		key.WriteString("\x01" + strings.Join(p, "\x00"))
	}
	return key.String()
}
