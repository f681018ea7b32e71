package audit

// Ref names one object in a report: what PolicyReport results list as resources.
type Ref struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	UID        string `json:"uid,omitempty"`
}

// folder follows ownerReferences through the objects of one namespace listed so far. Kinds lists owners before
// what they own, so when a ReplicaSet or Pod is seen, the workload that controls it has been: it folds into that
// workload (its top owner), which is evaluated and reported instead. It holds one entry per workload, never a Pod.
type folder struct {
	top map[string]Ref // UID of a listed workload → the top owner it reports under (itself when it has none)
}

func newFolder() *folder { return &folder{top: map[string]Ref{}} }

// add records obj and returns the top owner it folds into, or ok=false when it is a top object itself (no
// controller, or a controller that was not listed: it is then reported on its own).
func (f *folder) add(kind Kind, obj map[string]any) (owner Ref, folded bool) {
	md, _ := obj["metadata"].(map[string]any)
	uid, _ := md["uid"].(string)
	self := Ref{APIVersion: kind.GroupVersion().String(), Kind: kind.Kind, Namespace: str(md["namespace"]), Name: str(md["name"]), UID: uid}
	top, found := self, false
	if ctrl := controllerUID(md); ctrl != "" {
		top, found = f.top[ctrl]
		if !found {
			top = self
		}
	}
	if kind.Kind != "Pod" && uid != "" {
		f.top[uid] = top
	}
	return top, found
}

// controllerUID is the UID of the ownerReference marked controller: the one object that manages obj.
func controllerUID(md map[string]any) string {
	refs, _ := md["ownerReferences"].([]any)
	for _, r := range refs {
		ref, _ := r.(map[string]any)
		if c, _ := ref["controller"].(bool); c {
			return str(ref["uid"])
		}
	}
	return ""
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
