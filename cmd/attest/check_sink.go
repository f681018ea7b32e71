package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// checkSink receives each document's findings in input order. Text is written as it comes and JSON results go
// to a temporary file until the counts that head the report are known, so neither holds a stream's findings in
// memory; SARIF, JUnit and --framework group results per rule or object and keep them.
type checkSink struct {
	run  *checkRun
	w    io.Writer
	keep bool
	text bool
	// spool holds the JSON results, each indented as writeJSON would indent it inside the report.
	spool   *os.File
	spoolW  *bufio.Writer
	written int
	werr    error
}

func newCheckSink(run *checkRun, w io.Writer) (*checkSink, error) {
	s := &checkSink{run: run, w: w}
	switch {
	case run.opts.framework != "" || run.opts.format == "sarif" || run.opts.format == "junit":
		s.keep = true
	case run.opts.format == "json":
		f, err := os.CreateTemp("", "attest-results-*.json")
		if err != nil {
			return nil, fmt.Errorf("json report: %w", err)
		}
		s.spool, s.spoolW = f, bufio.NewWriterSize(f, 64<<10)
	default:
		s.text = true
	}
	return s, nil
}

func (s *checkSink) add(dr docReport) {
	r := &s.run.report
	r.Objects += len(dr.objects)
	s.run.inputErr = append(s.run.inputErr, dr.inputErrs...)
	for _, res := range dr.results {
		switch {
		case res.Denied:
			r.Violations++
		case res.Exemption != nil:
			r.Exempted++
		default:
			r.warnings++
		}
	}
	switch {
	case s.keep:
		offset := len(r.Results)
		for _, obj := range dr.objects {
			for i := range obj.Results {
				obj.Results[i] += offset
			}
			s.run.objects = append(s.run.objects, obj)
		}
		r.Results = append(r.Results, dr.results...)
	case s.text:
		for _, res := range dr.results {
			writeResultLine(s.w, "", res)
		}
	case s.werr == nil:
		for _, res := range dr.results {
			b, err := json.MarshalIndent(res, "    ", "  ")
			if err != nil {
				s.werr = err
				return
			}
			sep := ",\n    "
			if s.written == 0 {
				sep = "\n    "
			}
			s.written++
			if _, err := s.spoolW.WriteString(sep); err != nil {
				s.werr = err
				return
			}
			if _, err := s.spoolW.Write(b); err != nil {
				s.werr = err
				return
			}
		}
	}
}

// err is the first failure to write the spooled results.
func (s *checkSink) err() error {
	if s.werr != nil {
		return fmt.Errorf("json report: %w", s.werr)
	}
	return nil
}

// finishJSON writes the report exactly as writeJSON would write a checkReport: the counts, then the results.
func (s *checkSink) finishJSON() error {
	head, err := json.MarshalIndent(s.run.report.checkCounts, "", "  ")
	if err != nil {
		return err
	}
	head = bytes.TrimSuffix(head, []byte("\n}"))
	if _, err := s.w.Write(head); err != nil {
		return err
	}
	if s.written == 0 {
		_, err = io.WriteString(s.w, ",\n  \"results\": []\n}\n")
		return err
	}
	if _, err := io.WriteString(s.w, ",\n  \"results\": ["); err != nil {
		return err
	}
	if err := s.spoolW.Flush(); err != nil {
		return fmt.Errorf("json report: %w", err)
	}
	if _, err := s.spool.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("json report: %w", err)
	}
	if _, err := io.Copy(s.w, s.spool); err != nil {
		return fmt.Errorf("json report: %w", err)
	}
	_, err = io.WriteString(s.w, "\n  ]\n}\n")
	return err
}

// close removes the spooled results.
func (s *checkSink) close() {
	if s.spool != nil {
		_ = s.spool.Close()
		_ = os.Remove(s.spool.Name())
	}
}
