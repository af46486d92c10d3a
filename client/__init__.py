"""client: what a person (or a helpline on their behalf) runs to protect their images."""
