"""What the user wrote: YAML read with positions, the manifest model, expressions, variables,
for_each/count instances, validation against the schemas, and every local file a manifest
reads or writes (localfiles, privatefile), and the key that vouches for what reconciler
wrote (keys: plan signing, the ledger of written files). Imports nothing above state/ and errors.
"""
