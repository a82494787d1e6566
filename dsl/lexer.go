package dsl

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/alecthomas/participle/v2/lexer"
)

// Token types the lexer hands to participle.
const (
	tEOF     = lexer.EOF
	tKeyword = lexer.TokenType(-2 - iota) // value is the lower-cased keyword
	tWord                                 // an unquoted word that is no keyword (always an error)
	tString                               // value is the content between the quotes
	tNumber
	tOp      // == != < <= > >=
	tPunct   // ( ) ,
	tInvalid // one character the language does not have
)

var symbols = map[string]lexer.TokenType{
	"EOF": tEOF, "Keyword": tKeyword, "Word": tWord, "String": tString, "Number": tNumber,
	"Op": tOp, "Punct": tPunct, "Invalid": tInvalid,
}

// token is one lexed token with its raw text, kept beside participle's copy for error messages.
type token struct {
	typ   lexer.TokenType
	value string // participle's value: keyword lower-cased, string content without quotes
	raw   string // as written
	off   int    // byte offset
	pos   Pos
}

// lex splits src into tokens ending with an EOF token. Problems that do not stop the token stream
// (an unclosed string or comment) are returned as errors; a character the language does not have
// becomes a tInvalid token that the parser reports with what it expected there.
func lex(src *source) ([]token, ErrorList) {
	text := src.text
	var toks []token
	var errs ErrorList
	i := 0
	line, lineStart := 1, 0
	col := func(off int) int { // 1-based rune column of off on the current line
		if off-lineStart < 64 && isASCII(text[lineStart:off]) {
			return off - lineStart + 1
		}
		return utf8.RuneCountInString(text[lineStart:off]) + 1
	}
	emit := func(typ lexer.TokenType, value string, start, end int) {
		toks = append(toks, token{typ: typ, value: value, raw: text[start:end], off: start, pos: Pos{Offset: start, Line: line, Column: col(start)}})
	}
	for i < len(text) {
		c := text[i]
		switch {
		case c == '\n':
			i++
			line, lineStart = line+1, i
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '/' && i+1 < len(text) && text[i+1] == '/':
			for i < len(text) && text[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(text) && text[i+1] == '*':
			end := strings.Index(text[i+2:], "*/")
			if end < 0 {
				errs = append(errs, src.errorAt(i, "/*", "unclosed comment, expected */ before the end of the input"))
				i = len(text)
				break
			}
			for j := i; j < i+2+end+2; j++ {
				if text[j] == '\n' {
					line, lineStart = line+1, j+1
				}
			}
			i += 2 + end + 2
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(text) && text[j] != c && text[j] != '\n' && text[j] != '\r' {
				j++
			}
			if j < len(text) && text[j] == c {
				emit(tString, text[i+1:j], i, j+1)
				i = j + 1
				break
			}
			errs = append(errs, src.errorAt(i, text[i:j], "unclosed string, expected a closing %c before the end of the line", c))
			emit(tString, text[i+1:j], i, j)
			i = j
		case isLetter(c) || c == '_':
			j := i + 1
			for j < len(text) && (isLetter(text[j]) || isDigit(text[j]) || text[j] == '_') {
				j++
			}
			w := text[i:j]
			if kw := strings.ToLower(w); keywords[kw] {
				emit(tKeyword, kw, i, j)
			} else {
				emit(tWord, w, i, j)
			}
			i = j
		case isDigit(c) || (c == '-' && i+1 < len(text) && isDigit(text[i+1])):
			j := i + 1
			for j < len(text) && isDigit(text[j]) {
				j++
			}
			if j+1 < len(text) && text[j] == '.' && isDigit(text[j+1]) {
				j++
				for j < len(text) && isDigit(text[j]) {
					j++
				}
			}
			if f, err := strconv.ParseFloat(text[i:j], 64); err != nil || math.IsInf(f, 0) {
				errs = append(errs, src.errorAt(i, text[i:j], "number %s is out of range, expected at most about 1.8e308 in size", shorten(text[i:j])))
				emit(tNumber, "0", i, j)
			} else {
				emit(tNumber, text[i:j], i, j)
			}
			i = j
		case c == '=' || c == '!' || c == '<' || c == '>':
			if i+1 < len(text) && text[i+1] == '=' {
				emit(tOp, text[i:i+2], i, i+2)
				i += 2
			} else if c == '<' || c == '>' {
				emit(tOp, text[i:i+1], i, i+1)
				i++
			} else {
				emit(tInvalid, text[i:i+1], i, i+1)
				i++
			}
		case c == '(' || c == ')' || c == ',':
			emit(tPunct, text[i:i+1], i, i+1)
			i++
		default:
			_, n := utf8.DecodeRuneInString(text[i:])
			emit(tInvalid, text[i:i+n], i, i+n)
			i += n
		}
	}
	emit(tEOF, "", len(text), len(text))
	return toks, errs
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// definition is the lexer.Definition participle is built with. Parse lexes first (to report lexer
// problems with positions and to bound nesting before recursion) and hands the tokens over through
// tokenStream; Lex exists so that the definition stands on its own.
type definition struct{}

func (definition) Symbols() map[string]lexer.TokenType { return symbols }

func (definition) Lex(_ string, r io.Reader) (lexer.Lexer, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return definition{}.LexString("", string(b))
}

func (definition) LexString(_ string, s string) (lexer.Lexer, error) {
	toks, errs := lex(newSource(s))
	if len(errs) > 0 {
		return nil, errs
	}
	return newTokenStream(toks), nil
}

// tokenStream feeds already-lexed tokens to participle.
type tokenStream struct {
	toks []lexer.Token
	i    int
}

func newTokenStream(toks []token) *tokenStream {
	out := make([]lexer.Token, len(toks))
	for i, t := range toks {
		out[i] = lexer.Token{Type: t.typ, Value: t.value, Pos: lexer.Position{Offset: t.off, Line: t.pos.Line, Column: t.pos.Column}}
	}
	return &tokenStream{toks: out}
}

func (s *tokenStream) Next() (lexer.Token, error) {
	if s.i >= len(s.toks) {
		return s.toks[len(s.toks)-1], nil
	}
	t := s.toks[s.i]
	s.i++
	return t, nil
}

// describe names a token for "unexpected …" messages.
func (t token) describe() string {
	switch t.typ {
	case tEOF:
		return "end of input"
	case tKeyword:
		if predicates[t.value] {
			return t.value
		}
		return strings.ToUpper(t.value)
	case tWord:
		return fmt.Sprintf("word %s", quoteShort(t.raw))
	case tString:
		return "string " + shorten(t.raw)
	case tNumber:
		return "number " + t.raw
	case tOp:
		return "operator " + quoteShort(t.raw)
	case tPunct:
		return quoteShort(t.raw)
	default:
		r, _ := utf8.DecodeRuneInString(t.raw)
		switch r {
		case '\u00a0':
			return `character "\u00a0" (a no-break space; white space is space, tab, CR or LF)`
		case utf8.RuneError:
			return fmt.Sprintf("byte 0x%02x (the input is not UTF-8)", t.raw[0])
		}
		return "character " + quoteShort(t.raw)
	}
}

func quoteShort(s string) string { return fmt.Sprintf("%q", shorten(s)) }

func shorten(s string) string {
	if utf8.RuneCountInString(s) <= 40 {
		return s
	}
	r := []rune(s)
	return string(r[:37]) + "…"
}
