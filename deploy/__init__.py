"""pyinfra deploys, operations and facts for the OneSift database."""
