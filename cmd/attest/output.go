package main

import (
	"bufio"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// emit writes a report to --output FILE, or to stdout when path is empty. The file is written whole or, on
// failure, reported as an input error (exit 2): a CI step must never read half a report as a clean one.
func emit(cmd *cobra.Command, path string, write func(io.Writer) error) error {
	if path == "" {
		w := bufio.NewWriter(cmd.OutOrStdout())
		if err := write(w); err != nil {
			return err
		}
		return w.Flush()
	}
	f, err := os.Create(path)
	if err != nil {
		return usageError(fmt.Errorf("--output: %w", err))
	}
	w := bufio.NewWriter(f)
	err = write(w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return usageError(fmt.Errorf("--output %s: %w", path, err))
	}
	return nil
}

// checkFormat refuses a --format value outside allowed.
func checkFormat(format string, allowed ...string) error {
	for _, a := range allowed {
		if format == a {
			return nil
		}
	}
	list := ""
	for i, a := range allowed {
		switch {
		case i == 0:
		case i == len(allowed)-1:
			list += " or "
		default:
			list += ", "
		}
		list += a
	}
	return usageError(fmt.Errorf("--format must be %s, got %q", list, format))
}
