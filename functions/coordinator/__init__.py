"""The coordinator: aggregates agent results per workflow in DynamoDB and finalizes each workflow once."""
