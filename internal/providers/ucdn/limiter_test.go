package ucdn_test

import "golang.org/x/time/rate"

func newLimiter(r float64, burst int) *rate.Limiter { return rate.NewLimiter(rate.Limit(r), burst) }
