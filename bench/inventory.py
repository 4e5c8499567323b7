# The benchmark host: its own local container, so benchmarks never touch the dev host.
bench = [
    (
        "@docker/onesift-bench",
        {
            "listen_addresses": ["*"],
            "client_networks": ["samenet"],
            "secrets_name": "bench",
            "generate_secrets": True,
            "expected_tenants": 2000,
        },
    )
]
