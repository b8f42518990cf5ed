package chaos

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestSinkFencesLowerTokens(t *testing.T) {
	s := NewSink()
	writes := []struct {
		give TermKey
		want bool
	}{
		{TermKey{"a", 0}, true}, // client-go's first term has token 0
		{TermKey{"a", 0}, true},
		{TermKey{"b", 2}, true},
		{TermKey{"a", 0}, false}, // the old term, after a newer one wrote
		{TermKey{"a", 1}, false},
		{TermKey{"b", 2}, true},
		{TermKey{"c", 2}, false}, // an equal token of another writer is another term: fenced
		{TermKey{"b", 3}, true},
	}
	for i, w := range writes {
		if got := s.Write(w.give); got != w.want {
			t.Errorf("write %d %+v accepted = %v, want %v", i, w.give, got, w.want)
		}
	}
	if got := s.Writes(TermKey{"a", 0}); got.Accepted != 2 || got.Rejected != 1 {
		t.Errorf("a/0 writes = %+v, want 2 accepted, 1 rejected", got)
	}
	if got := s.Rejected(); got != 3 {
		t.Errorf("Rejected() = %d, want 3", got)
	}
	if a, b := s.Writes(TermKey{"b", 2}), s.Writes(TermKey{"a", 0}); a.FirstAccepted < b.LastAccepted {
		t.Errorf("b/2 first accepted at %d, before a/0's last at %d", a.FirstAccepted, b.LastAccepted)
	}
}

func TestSinkHTTP(t *testing.T) {
	srv := httptest.NewServer(NewSink())
	defer srv.Close()
	tests := []struct {
		query string
		want  int
	}{
		{"who=a&seq=5", http.StatusOK},
		{"who=a&seq=5", http.StatusOK}, // the same writer again: client-go keeps the count
		{"who=b&seq=5", http.StatusConflict},
		{"who=b&seq=4", http.StatusConflict},
		{"who=b&seq=6", http.StatusOK},
		{"who=b", http.StatusBadRequest},
		{"seq=7", http.StatusBadRequest},
		{"who=b&seq=x", http.StatusBadRequest},
	}
	for _, tt := range tests {
		resp, err := http.Post(srv.URL+"/write?"+tt.query, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: status %d, want %d", tt.query, resp.StatusCode, tt.want)
		}
	}
}

func TestSinkAwait(t *testing.T) {
	s := NewSink()
	got := make(chan TermKey, 1)
	go func() {
		k, _, err := s.Await(context.Background(), func(k TermKey, w TermWrites) bool { return k.Seq >= 2 && w.Accepted >= 2 })
		if err != nil {
			t.Error(err)
		}
		got <- k
	}()
	s.Write(TermKey{"a", 1})
	s.Write(TermKey{"b", 2})
	s.Write(TermKey{"b", 2})
	if k := <-got; k != (TermKey{"b", 2}) {
		t.Errorf("Await returned %+v, want b/2", k)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Await(ctx, func(TermKey, TermWrites) bool { return false }); err == nil {
		t.Error("Await with a cancelled context returned no error")
	}
}
