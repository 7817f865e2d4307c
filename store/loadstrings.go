package store

import "unsafe"

// loadStrings makes the strings of the values Load decodes, straight from
// bbolt's memory map, in as little heap as the engine's state allows.
//
// Copying each pair out of the map as one string, every field a substring
// of it, kept the whole encoded value alive for as long as any field was:
// its version byte, times and varints, and a private copy of text that
// thousands of records repeat (a device model, an access state, the run ID
// of every owned entry a run wrote). Instead each string field is made on
// its own, one of three ways, which took the state BenchmarkLoad loaded
// (150,000 device and 150,000 MDM records, as Load then read both) from
// 354 MB of heap to 284 MB:
//
//   - a field whose values repeat across records (dec.sym) is interned: all
//     records with the same device model share one string;
//   - a field equal to the value's key, or to the key's first part (an MDM
//     record's ID, a device record's Mailbox), shares the key's memory;
//   - any other field is copied into a chunk of an arena, whose chunks the
//     GC frees once no string in them is in use. A chunk outlives most of
//     its strings when the engine drops records, but the arena never holds
//     more than Load made.
//
// Nothing it returns aliases its input, which is the memory map: Load
// releases the mapped pages once the decoders finish, and the transaction
// that maps them ends.
//
// Load makes one for each bucket, used by the goroutine that decodes it;
// it is not safe for concurrent use.
type loadStrings struct {
	// chunk is the arena's current chunk. Its bytes up to len are handed
	// out as strings and never written again; see copy.
	chunk []byte
	// syms maps a repeated field's text to its one string.
	syms map[string]string
	// key is the key of the value being decoded, in the arena.
	key string
	// seen holds the strings of the value being decoded as handed out,
	// numbered as dec numbers them, so that a back-reference resolves to
	// the same string (dec.n says how many are valid).
	seen [maxRefs]string
}

const (
	// stringChunk is the size of an arena chunk: large enough that its
	// allocation is rare, small enough that a chunk kept alive by one
	// string in use wastes little.
	stringChunk = 64 << 10
	// ownString is the length from which a string gets its own allocation
	// rather than a place in a chunk: it bounds the tail a chunk can leave
	// unused when the next string does not fit.
	ownString = stringChunk / 16
	// maxSyms caps the interner: a field expected to repeat that does not
	// (an error text that names a recipient) then costs a copy, not a map
	// entry for every record. The field kinds Load interns have a few
	// dozen values each.
	maxSyms = 4096
)

func newLoadStrings() *loadStrings {
	return &loadStrings{syms: make(map[string]string)}
}

// startValue copies a value's key into the arena and returns it; the
// value's fields decoded next may share its memory.
func (ls *loadStrings) startValue(k []byte) string {
	ls.key = ls.copy(k)
	return ls.key
}

// field returns a string equal to b: the key's memory when b equals the
// key or its part before a '/' or '|' (a device record's key is
// mailbox/device ID, an owned entry's mailbox|list|device ID), otherwise a
// copy.
func (ls *loadStrings) field(b []byte) string {
	if k := ls.key; len(b) <= len(k) && (len(b) == len(k) || k[len(b)] == '/' || k[len(b)] == '|') && string(b) == k[:len(b)] {
		return k[:len(b)]
	}
	return ls.copy(b)
}

// sym returns the one string for b's text, made on its first use.
func (ls *loadStrings) sym(b []byte) string {
	if s, ok := ls.syms[string(b)]; ok {
		return s
	}
	s := ls.copy(b)
	if len(ls.syms) < maxSyms {
		ls.syms[s] = s
	}
	return s
}

// copy returns a copy of b as a string, in the arena's current chunk or,
// for a long string, in a chunk of its own.
//
// The string is made with unsafe.String over the chunk's bytes. That is
// safe because those bytes are never written again: copy only appends to
// a chunk within its capacity (so append never moves it), writing past the
// bytes it has handed out, and starts a new chunk when b does not fit; the
// chunk itself is reachable from nowhere else. The strings keep their chunk
// alive for the GC like any pointer into an allocation.
func (ls *loadStrings) copy(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) >= ownString {
		own := make([]byte, len(b))
		copy(own, b)
		return unsafe.String(&own[0], len(own))
	}
	if cap(ls.chunk)-len(ls.chunk) < len(b) {
		ls.chunk = make([]byte, 0, stringChunk)
	}
	start := len(ls.chunk)
	ls.chunk = append(ls.chunk, b...)
	return unsafe.String(&ls.chunk[start], len(b))
}
