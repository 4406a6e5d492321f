"""The HTTP plumbing around the domains: how errors are rendered, the OpenAPI schema, middleware (security
headers, session cookie, public URLs, body limits), page templates, and the dependencies every route shares.

Domain code raises app.errors and returns data; nothing here knows about projects or labels."""
