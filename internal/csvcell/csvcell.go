// Package csvcell keeps the text cells of the CSV files the switch writes (the auditor
// export and the settlement file) from being run as formulas by a spreadsheet.
//
// A spreadsheet that opens a CSV reads a cell starting with =, +, - or @ as a formula,
// and one starting with a tab or a carriage return may be trimmed into one; a merchant
// named =HYPERLINK("http://x","a") would then become a live link in an auditor's
// workbook. Following OWASP's advice on CSV injection, such a text cell is written with
// a single quote in front, which spreadsheets show as text. A cell that itself starts
// with a quote gets one more, so the rule can be undone: every text cell that starts
// with a quote had exactly one added.
//
// Only text columns go through Text: a number column keeps its minus sign (-1500 is a
// balance, not a formula).
package csvcell

// Quote is the character put in front of a text cell that needs it.
const Quote = '\''

// Risky reports whether a spreadsheet could take s, written as it is, for a formula:
// whether it starts with =, +, -, @, a tab or a carriage return.
func Risky(s string) bool {
	if s == "" {
		return false
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return true
	}
	return false
}

// Text returns s as it is written in a text column: with a quote in front when it is
// Risky or already starts with a quote, else unchanged.
func Text(s string) string {
	if Risky(s) || s != "" && s[0] == Quote {
		return string(Quote) + s
	}
	return s
}

// Value undoes Text: the stored value of a text cell read from a file.
func Value(cell string) string {
	if cell != "" && cell[0] == Quote {
		return cell[1:]
	}
	return cell
}
