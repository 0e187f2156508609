"""The access-request workflow: identity, policy and risk agents decide in parallel on an access request."""
