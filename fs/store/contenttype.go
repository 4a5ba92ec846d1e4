package store

import (
	"mime"
	"path"
	"strings"
)

// dataTypes are the Content-Types of the files data users keep, known
// whether or not the machine has /etc/mime.types (Go's own table lacks
// most of them).
var dataTypes = map[string]string{
	".csv": "text/csv", ".tsv": "text/tab-separated-values", ".txt": "text/plain", ".md": "text/markdown",
	".log": "text/plain", ".json": "application/json", ".jsonl": "application/x-ndjson", ".ndjson": "application/x-ndjson",
	".parquet": "application/vnd.apache.parquet", ".avro": "application/avro", ".orc": "application/octet-stream",
	".yaml": "application/yaml", ".yml": "application/yaml", ".xml": "application/xml", ".html": "text/html",
	".gz": "application/gzip", ".bz2": "application/x-bzip2", ".zst": "application/zstd", ".xz": "application/x-xz",
	".zip": "application/zip", ".tar": "application/x-tar", ".pdf": "application/pdf", ".png": "image/png",
	".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml", ".ipynb": "application/x-ipynb+json",
	".py": "text/x-python", ".sh": "text/x-shellscript", ".sql": "application/sql", ".mp4": "video/mp4",
}

// ContentTypeOf is the Content-Type a key's extension implies, "" when it
// implies none.
func ContentTypeOf(key string) string {
	ext := strings.ToLower(path.Ext(key))
	if ext == "" {
		return ""
	}
	if t, ok := dataTypes[ext]; ok {
		return t
	}
	return mime.TypeByExtension(ext)
}
