"""The scoring job: a customer snapshot to its partition of the scored table."""
