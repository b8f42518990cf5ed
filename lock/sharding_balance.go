package lock

import (
	"cmp"
	"slices"
)

// shareOf is how many of k shards member self should hold, given the live members (self
// among them) and how many shards each member's identity holds in the shards' records.
//
// With n live members, each holds floor(k/n) or ceil(k/n). Who holds ceil(k/n), the first k mod
// n members of a ranking, is chosen so that as few shards as possible move and every member
// computes the same from the same records: members rank by the shards they hold, counted at
// most up to ceil(k/n), most first, then by identity. Capping the count keeps the ranking still
// while a member above its share gives shards up, and a member that reaches ceil(k/n) stays
// ranked among those that hold it: a member's share does not change back and forth while the
// shards move, so no shard moves twice for one change of membership.
//
// A self that is not among the live members has no share.
func shareOf(self string, live []string, holds map[string]int, k int) int {
	n := len(live)
	if n == 0 || !slices.Contains(live, self) {
		return 0
	}
	floor, extra := k/n, k%n
	if extra == 0 {
		return floor
	}
	ceil := floor + 1
	ranked := slices.Clone(live)
	slices.SortFunc(ranked, func(a, b string) int {
		if c := cmp.Compare(min(holds[b], ceil), min(holds[a], ceil)); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	if slices.Index(ranked, self) < extra {
		return ceil
	}
	return floor
}
