package mountopts

import "strings"

// Suggest returns the candidate closest to word (edit distance at most 2,
// or one it starts with three letters or more), or "": the "did you mean"
// of mistyped commands, flags and -o options.
func Suggest(word string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		d := distance(word, c)
		if len(word) >= 3 && strings.HasPrefix(c, word) {
			d = 1
		}
		if d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// SuggestFlag is Suggest for a mistyped flag as typed ("-v", "--entry-tl",
// "--verison=x"): one letter matches a flag it starts.
func SuggestFlag(bad string, names []string) string {
	word := strings.TrimLeft(strings.SplitN(bad, "=", 2)[0], "-")
	if len(word) == 1 {
		for _, n := range names {
			if strings.HasPrefix(n, word) {
				return n
			}
		}
		return ""
	}
	return Suggest(word, names)
}

// distance is the Levenshtein distance.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
