"""The logins and keys a deployment needs: the worker's and PostgREST's passwords, the API's JWTs."""
