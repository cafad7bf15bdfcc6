package config

import "github.com/handoverd/handoverd/secret"

// Secret is a string that never prints (see package secret).
type Secret = secret.Secret
