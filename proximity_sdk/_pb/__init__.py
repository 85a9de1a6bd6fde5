"""Generated protobuf and gRPC modules of the Proximity contract. Do not edit:
change proto/ and run scripts/gen-proto."""
