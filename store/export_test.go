package store

// MarkUploading makes Clean take path for the temporary file of an upload under way in this process.
func MarkUploading(b *LocalBlobs, path string) { b.open.Store(path, true) }
