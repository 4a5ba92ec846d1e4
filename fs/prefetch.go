package fs

import (
	"kfs/fs/listing"
	"time"
)

// listingTTL is how long a complete listing answers a readdir from memory.
func (f *FS) listingTTL() time.Duration { return min(f.cfg.EntryTTL, f.cfg.NegativeTTL) }

// walkFrom is called when d is opened: if its parent was read shortly
// before, the parent's subdirectories after d are listed ahead.
func (d *dirNode) walkFrom() {
	if d.fsys.listingTTL() <= 0 {
		return
	}
	name, p := d.Parent()
	if p == nil {
		return
	}
	parent, ok := p.Operations().(*dirNode)
	if !ok {
		return
	}
	parent.mu.Lock()
	next, pfx := d.fsys.ahead.Following(parent.listing, name), parent.prefix
	parent.mu.Unlock()
	for _, n := range next {
		if !d.fsys.ahead.Start(d.bucket, pfx+n+"/") {
			return
		}
	}
}

// listerConfig is what this mount's listers need of it.
func (f *FS) listerConfig() listing.ListerConfig {
	return listing.ListerConfig{Store: f.store, Background: f.background, Hidden: f.del.isPending, IsDir: isDirObject, LogOnce: f.logOnce}
}
