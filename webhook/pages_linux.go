package webhook

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ReleaseStartupPages unmaps the pages of the binary's code and read-only data that start-up touched and asks the
// kernel to map them back in small pages: the kernel maps a binary held in the page cache in 2 MiB folios, so
// package initialisation and configuration loading leave tens of MiB resident that admissions never run. The
// pages stay in the page cache; what admissions run is mapped again on its first use (a minor fault). Only
// read-only mappings (r-xp, r--p) that hold no page of their own are touched: a read-only mapping can still hold
// pages written before it was made read-only (the dynamic loader's relocations of a cgo binary, RELRO), and
// dropping those would bring back the file's unrelocated bytes. It returns the resident bytes of the read-only
// mappings of the binary before and after.
func ReleaseStartupPages() (before, after int64, err error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, 0, fmt.Errorf("the executable: %w", err)
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return 0, 0, fmt.Errorf("the executable: %w", err)
	}
	ranges, before, err := smapsOf(exe)
	if err != nil {
		return 0, 0, err
	}
	for _, r := range ranges {
		for _, advice := range []int{unix.MADV_NOHUGEPAGE, unix.MADV_DONTNEED} {
			if _, _, errno := unix.Syscall(unix.SYS_MADVISE, r[0], r[1]-r[0], uintptr(advice)); errno != 0 {
				return before, 0, fmt.Errorf("madvise %#x-%#x: %w", r[0], r[1], errno)
			}
		}
	}
	_, after, err = smapsOf(exe)
	return before, after, err
}

// smapsOf reads this process's /proc/self/smaps for readOnlyMappings.
func smapsOf(exe string) ([][2]uintptr, int64, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return nil, 0, fmt.Errorf("the process's mappings: %w", err)
	}
	defer func() { _ = f.Close() }()
	return readOnlyMappings(f, exe)
}

// readOnlyMappings reads smaps: the read-only mappings of exe (code and read-only data) that can be released
// (no anonymous page), and the resident bytes of all its read-only mappings.
func readOnlyMappings(smaps io.Reader, exe string) ([][2]uintptr, int64, error) {
	type mapping struct {
		r    [2]uintptr
		anon bool
	}
	var maps []mapping
	var rss int64
	in := false
	sc := bufio.NewScanner(smaps)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if strings.HasSuffix(fields[0], ":") { // a field of the current mapping
			if !in || len(fields) < 2 || (fields[0] != "Rss:" && fields[0] != "Anonymous:") {
				continue
			}
			kib, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return nil, 0, fmt.Errorf("smaps: %q: %w", sc.Text(), err)
			}
			if fields[0] == "Rss:" {
				rss += kib << 10
			} else if kib > 0 {
				maps[len(maps)-1].anon = true
			}
			continue
		}
		in = false
		if len(fields) < 6 || fields[5] != exe || (fields[1] != "r-xp" && fields[1] != "r--p") {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, 0, fmt.Errorf("smaps: mapping %q", fields[0])
		}
		maps = append(maps, mapping{r: [2]uintptr{uintptr(start), uintptr(end)}})
		in = true
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("smaps: %w", err)
	}
	var ranges [][2]uintptr
	for _, m := range maps {
		if !m.anon {
			ranges = append(ranges, m.r)
		}
	}
	return ranges, rss, nil
}
