"""The OpenAPI document of the public API: operations by resource, shared types, the builder."""
