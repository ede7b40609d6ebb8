package norid

var orgWeights = [8]int{3, 2, 7, 6, 5, 4, 3, 2}

// ValidOrg reports whether s is a 9-digit organisation number whose last digit
// is the mod-11 check digit of the first eight (weights 3 2 7 6 5 4 3 2). A
// remainder giving check digit 10 makes the number invalid; 11 means 0.
func ValidOrg(s string) bool {
	if len(s) != 9 || !allDigits(s) {
		return false
	}
	sum := 0
	for i, w := range orgWeights {
		sum += int(s[i]-'0') * w
	}
	return checkDigit(sum) == int(s[8]-'0')
}

var (
	pidWeights1 = [9]int{3, 7, 6, 1, 8, 9, 4, 5, 2}
	pidWeights2 = [10]int{5, 4, 3, 2, 7, 6, 5, 4, 3, 2}
)

// ValidPID reports whether s is an 11-digit national identity number whose two
// check digits (positions 10 and 11) both hold under mod-11.
func ValidPID(s string) bool {
	if len(s) != 11 || !allDigits(s) {
		return false
	}
	sum := 0
	for i, w := range pidWeights1 {
		sum += int(s[i]-'0') * w
	}
	if checkDigit(sum) != int(s[9]-'0') {
		return false
	}
	sum = 0
	for i, w := range pidWeights2 {
		sum += int(s[i]-'0') * w
	}
	return checkDigit(sum) == int(s[10]-'0')
}

// checkDigit turns a weighted sum into its mod-11 check digit, or -1 when the
// check digit would be 10 (no valid number has that sum).
func checkDigit(sum int) int {
	c := 11 - sum%11
	switch c {
	case 11:
		return 0
	case 10:
		return -1
	}
	return c
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// CompleteOrg appends the mod-11 check digit to an 8-digit prefix. It reports
// false when no check digit exists for that prefix. Used to make valid
// numbers for demos and tests.
func CompleteOrg(prefix8 string) (string, bool) {
	if len(prefix8) != 8 || !allDigits(prefix8) {
		return "", false
	}
	sum := 0
	for i, w := range orgWeights {
		sum += int(prefix8[i]-'0') * w
	}
	c := checkDigit(sum)
	if c < 0 {
		return "", false
	}
	return prefix8 + string(rune('0'+c)), true
}
