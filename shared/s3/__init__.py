"""S3-compatible object storage (MinIO, SeaweedFS): presigned uploads and downloads."""
