package lock

import (
	"fmt"
	"testing"
)

func TestShareOfGivesEachFloorOrCeilAndSumsToK(t *testing.T) {
	for _, k := range []int{1, 2, 7, 64, 1000} {
		for n := 1; n <= 9; n++ {
			var live []string
			for m := range n {
				live = append(live, fmt.Sprintf("m%d", m))
			}
			holds := map[string]int{"m1": k, "m3": 2} // any records: every member computes from the same
			sum := 0
			for _, self := range live {
				share := shareOf(self, live, holds, k)
				if share != k/n && share != (k+n-1)/n {
					t.Fatalf("k=%d n=%d: %s's share %d is neither floor nor ceil", k, n, self, share)
				}
				sum += share
			}
			if sum != k {
				t.Fatalf("k=%d n=%d: shares sum to %d", k, n, sum)
			}
		}
	}
}

func TestShareOfGivesCeilToThoseHoldingMostSoFewestShardsMove(t *testing.T) {
	// 64 shards, 2 members with 32 each, a third joins: 64 = 22+21+21. The members holding
	// most keep the larger share, so 21 shards move (the least possible), not 22.
	live := []string{"a", "b", "c"}
	holds := map[string]int{"a": 32, "b": 32}
	got := []int{shareOf("a", live, holds, 64), shareOf("b", live, holds, 64), shareOf("c", live, holds, 64)}
	if got[0] != 22 || got[1] != 21 || got[2] != 21 {
		t.Fatalf("shares = %v, want [22 21 21]", got)
	}
	// While a and b give shards up and c takes them, no share changes.
	for _, step := range []map[string]int{
		{"a": 25, "b": 32, "c": 7},
		{"a": 22, "b": 27, "c": 15},
		{"a": 22, "b": 21, "c": 20},
		{"a": 22, "b": 21, "c": 21},
	} {
		for i, m := range live {
			if s := shareOf(m, live, step, 64); s != got[i] {
				t.Fatalf("holds %v: %s's share changed from %d to %d", step, m, got[i], s)
			}
		}
	}
	// Ties break by identity.
	if s := shareOf("c", []string{"c", "d"}, map[string]int{}, 3); s != 2 {
		t.Fatalf("c's share of 3 among c and d holding none = %d, want 2", s)
	}
}

func TestShareOfIsZeroForOneNotLive(t *testing.T) {
	if s := shareOf("x", []string{"a"}, nil, 4); s != 0 {
		t.Fatalf("share of a non-member = %d", s)
	}
	if s := shareOf("x", nil, nil, 4); s != 0 {
		t.Fatalf("share with no members = %d", s)
	}
}
