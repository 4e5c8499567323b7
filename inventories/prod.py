# Production database hosts. Replace with your own; passwords come from
# ONESIFT_*_PASSWORD or ~/.config/onesift/prod.env (see README).
prod = [
    ("db1.onesift.internal", {"ssh_user": "deploy", "_sudo": True}),
]
