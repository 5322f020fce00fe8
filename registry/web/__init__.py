"""HTTP plumbing shared by every router: dependencies, errors, middleware."""
