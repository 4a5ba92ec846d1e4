package ctl

import (
	"kfs/fs/store"
)

// Backend is what the control socket needs of the object store (package
// s3store implements it): objects, multipart (compose), buckets (bucket
// management), select and events. Errors wrap store's sentinels.
type Backend interface {
	store.Objects
	store.Multipart
	store.Buckets
	store.Selector
	store.Events
}
