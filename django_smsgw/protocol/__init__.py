"""The provider's wire protocol: request bodies, tolerant reply parsing, code tables. No ORM."""
