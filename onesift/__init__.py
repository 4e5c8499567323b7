"""OneSift core: settings, SQL, host sessions and services; deploy/ and ops_cli/ are front ends over it."""
