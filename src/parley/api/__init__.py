"""REST API v1 (FastAPI routers). DESIGN §2 "REST API" is the contract.

Routers translate HTTP into service calls and records into JSON; they hold no domain logic.
"""
