"""The bottom layer: what every other package may import (it imports none of them)."""
