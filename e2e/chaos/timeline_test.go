package chaos

import (
	"testing"
	"time"
)

func TestOverlaps(t *testing.T) {
	type step func(*Timeline)
	begin := func(who string, at int64) step {
		return func(tl *Timeline) { tl.Begin("lease", who, "lib", at, at) }
	}
	beginOn := func(lock, who string, at int64) step {
		return func(tl *Timeline) { tl.Begin(lock, who, "lib", at, at) }
	}
	end := func(who string, at int64) step { return func(tl *Timeline) { tl.End(who, at, "returned") } }
	pause := func(who string) step { return func(tl *Timeline) { tl.Pause(who) } }
	tests := []struct {
		name  string
		steps []step
		now   int64
		want  []string // "earlier>later" pairs
	}{
		{"back to back", []step{begin("a", 10), end("a", 20), begin("b", 20), end("b", 30)}, 40, nil},
		{"gap", []step{begin("a", 10), end("a", 15), begin("b", 20)}, 40, nil},
		{"late end", []step{begin("a", 10), begin("b", 20), end("a", 25)}, 40, []string{"a>b"}},
		{"open term runs until now", []step{begin("a", 10), begin("b", 20)}, 40, []string{"a>b"}},
		{"paused earlier term is exempt", []step{begin("a", 10), pause("a"), begin("b", 20), end("a", 25)}, 40, nil},
		{"paused later term is judged", []step{begin("a", 10), begin("b", 20), pause("b"), end("a", 25)}, 40, []string{"a>b"}},
		{"one long term over two", []step{begin("a", 10), begin("b", 20), end("b", 30), begin("c", 35), end("a", 50)}, 60, []string{"a>b", "a>c"}},
		{"same worker again", []step{begin("a", 10), begin("a", 20)}, 40, nil},
		{"different locks", []step{beginOn("slot-0", "a", 10), beginOn("slot-1", "b", 20), end("a", 25)}, 40, nil},
		{"same slot", []step{beginOn("slot-0", "a", 10), beginOn("slot-1", "b", 20), beginOn("slot-0", "c", 22), end("a", 25)}, 40, []string{"a>c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := NewTimeline()
			for _, s := range tt.steps {
				s(tl)
			}
			var got []string
			for _, o := range tl.Overlaps(tt.now) {
				got = append(got, o.Earlier.Who+">"+o.Later.Who)
				if o.By <= 0 {
					t.Errorf("%v: non-positive overlap %v", o, o.By)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("overlaps %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("overlaps %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestOverlapDuration(t *testing.T) {
	tl := NewTimeline()
	tl.Begin("lease", "a", "regent", 1, 0)
	tl.Begin("lease", "b", "client-go", 2, int64(time.Second))
	tl.End("a", int64(3*time.Second), "killed")
	o := tl.Overlaps(int64(5 * time.Second))
	if len(o) != 1 || o[0].By != 2*time.Second || o[0].Earlier.EndedBy != "killed" {
		t.Fatalf("overlaps %v, want a over b by 2s, ended by killed", o)
	}
	if terms := tl.Terms(int64(5 * time.Second)); terms[1].EndedBy != "still running" || terms[1].End != int64(5*time.Second) {
		t.Errorf("open term %+v, want it to end at now, still running", terms[1])
	}
}

func TestMostAtOnce(t *testing.T) {
	tl := NewTimeline()
	tl.Begin("s-0", "a", "regent", 1, 10)
	tl.Begin("s-1", "b", "regent", 1, 20)
	tl.End("a", 30, "returned")
	tl.Begin("s-0", "c", "regent", 2, 30) // begins where a ended: not at once
	tl.Begin("s-2", "d", "regent", 1, 40)
	tl.Begin("s-3", "e", "regent", 1, 50)
	tl.Pause("e") // a paused term is judged by fencing instead
	tl.End("d", 60, "returned")
	if most, at := tl.MostAtOnce(100); most != 3 || at != 40 {
		t.Errorf("MostAtOnce = %d at %d, want 3 at 40", most, at)
	}
	if open := tl.OpenTerms(); len(open) != 3 {
		t.Errorf("OpenTerms = %v, want b, c and e", open)
	}
}

func TestNowIsMonotonic(t *testing.T) {
	a := Now()
	b := Now()
	if a <= 0 || b < a {
		t.Fatalf("Now went from %d to %d", a, b)
	}
}
