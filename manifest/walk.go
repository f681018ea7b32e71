package manifest

import "context"

// Walk hands every document of the sources to work on up to workers goroutines and each result to emit in the
// sources' order, on the caller's goroutine. At most a few documents per worker are read ahead, so memory is
// bounded by the largest documents, not by how many there are. A source that cannot be opened or read reaches
// work as a Document naming it, with the error. When ctx is done no further document is read, and Walk returns
// once the documents already read are emitted.
func Walk[T any](ctx context.Context, sources []Source, workers int, work func(Document, error) T, emit func(T)) {
	workers = max(workers, 1)
	type job struct {
		doc Document
		err error
		out chan T
	}
	jobs := make(chan job)
	// order carries each job's result channel in input order; its capacity is the read-ahead window.
	order := make(chan chan T, 4*workers)
	go func() {
		defer close(jobs)
		defer close(order)
		for _, src := range sources {
			for doc, err := range Documents(src) {
				if ctx.Err() != nil {
					return
				}
				out := make(chan T, 1)
				order <- out
				jobs <- job{doc, err, out}
			}
		}
	}()
	for range workers {
		go func() {
			for j := range jobs {
				j.out <- work(j.doc, j.err)
			}
		}()
	}
	for out := range order {
		emit(<-out)
	}
}
