package webhook

import (
	"bufio"
	"fmt"
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
// mappings that cannot have been written (r-xp, r--p) are touched, so nothing is lost. It returns the resident
// bytes of those mappings before and after.
func ReleaseStartupPages() (before, after int64, err error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, 0, fmt.Errorf("the executable: %w", err)
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return 0, 0, fmt.Errorf("the executable: %w", err)
	}
	ranges, before, err := readOnlyMappings(exe)
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
	_, after, err = readOnlyMappings(exe)
	return before, after, err
}

// readOnlyMappings lists this process's read-only mappings of exe (code and read-only data) and their resident
// bytes, from /proc/self/smaps.
func readOnlyMappings(exe string) ([][2]uintptr, int64, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return nil, 0, fmt.Errorf("the process's mappings: %w", err)
	}
	defer func() { _ = f.Close() }()
	var ranges [][2]uintptr
	var rss int64
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if strings.HasSuffix(fields[0], ":") { // a field of the current mapping
			if in && fields[0] == "Rss:" && len(fields) >= 2 {
				kib, err := strconv.ParseInt(fields[1], 10, 64)
				if err != nil {
					return nil, 0, fmt.Errorf("smaps: %q: %w", sc.Text(), err)
				}
				rss += kib << 10
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
		ranges = append(ranges, [2]uintptr{uintptr(start), uintptr(end)})
		in = true
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("smaps: %w", err)
	}
	return ranges, rss, nil
}
