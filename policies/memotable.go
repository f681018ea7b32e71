package policies

import (
	"crypto/sha256"
	"sync"
)

// clockTable is a bounded store of values by SHA-256 key, the least recently used approximated by CLOCK (second
// chance): a policy memo's findings (memoTable), shared conversions (sharedTerms). Its keys and index hold no
// pointers, so the collector never scans them, and a full table reuses a slot per new key instead of allocating a
// list element: with every policy's memo full (a busy webhook's steady state) the memos are ~1.3 MiB, a tenth of
// it for the collector to scan, and storing a result allocates nothing. (An LRU with a list element per entry
// measured 3.7 MiB of attest serve's 11 MiB live heap, all of it scanned every cycle.) It is safe for concurrent
// use.
type clockTable[V any] struct {
	mu    sync.Mutex
	size  int
	index map[[sha256.Size]byte]int32 // key -> slot
	slots []memoSlot
	found []V // by slot: the values apart, so slots stay pointer-free
	hand  int // the next slot CLOCK considers for eviction
}

// memoTable is a policy memo's store: its findings by memo key.
type memoTable = clockTable[[]Finding]

type memoSlot struct {
	key  [sha256.Size]byte
	used bool // read or written since the hand last passed it
}

func newMemoTable(size int) *memoTable { return newClockTable[[]Finding](size) }

func newClockTable[V any](size int) *clockTable[V] {
	return &clockTable[V]{size: size, index: map[[sha256.Size]byte]int32{}} // grown as used: a policy seldom evaluated costs nothing
}

// get returns the value stored under key.
func (t *clockTable[V]) get(key [sha256.Size]byte) (V, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	i, ok := t.index[key]
	if !ok {
		var zero V
		return zero, false
	}
	t.slots[i].used = true
	return t.found[i], true
}

// add stores v under key, evicting a key not used since the hand last passed when the table is full.
func (t *clockTable[V]) add(key [sha256.Size]byte, v V) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i, ok := t.index[key]; ok {
		t.slots[i].used = true
		t.found[i] = v
		return
	}
	if len(t.slots) < t.size {
		t.index[key] = int32(len(t.slots))
		t.slots = append(t.slots, memoSlot{key: key, used: true})
		t.found = append(t.found, v)
		return
	}
	for t.slots[t.hand].used {
		t.slots[t.hand].used = false
		t.hand = (t.hand + 1) % len(t.slots)
	}
	i := t.hand
	t.hand = (t.hand + 1) % len(t.slots)
	delete(t.index, t.slots[i].key)
	t.index[key] = int32(i)
	t.slots[i] = memoSlot{key: key, used: true}
	t.found[i] = v
}

// len is the number of keys stored.
func (t *clockTable[V]) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.slots)
}

// purge empties the table.
func (t *clockTable[V]) purge() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.index)
	t.slots, t.found, t.hand = t.slots[:0], nil, 0
}
