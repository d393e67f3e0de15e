package stats

type CountTable struct {
	C0, C1, K0, K1     int
	EC0, EC1, EK0, EK1 float64
}
type Alternative int

const (
	Greater Alternative = iota
	Less
)

func RateRatioTest(t CountTable, theta0 float64, alt Alternative) float64 { return 1 }
func RateRatioCI(t CountTable, level float64) (float64, float64)          { return 0, 0 }
func SpendPocock(alpha float64, k, looks int) float64                     { return alpha }
