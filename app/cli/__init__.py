"""`sluice`, the command-line client: tail, query, send and status over the HTTP API and
the WebSocket, like any other client (it imports nothing of the server).

    SLUICE_URL=https://logs.example SLUICE_KEY=... sluice tail --min-level WARN
"""
