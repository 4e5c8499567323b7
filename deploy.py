"""
The whole OneSift deploy:

    pyinfra inventories/prod.py deploy.py
"""

from deploy import database, server

server.install()
database.bootstrap()
database.migrate()
