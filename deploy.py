"""
The whole OneSift deploy:

    pyinfra inventories/prod.py deploy.py
"""

from deploy import database, jobs, server

server.install()
database.bootstrap()
database.migrate()
jobs.install()
