"""
The whole OneSift deploy:

    pyinfra inventories/prod.py deploy.py
"""

from deploy import database, jobs, pgbackrest, server

server.install()
pgbackrest.install()
database.bootstrap()
database.migrate()
jobs.install()
