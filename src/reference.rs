//! The paper's numbers as data: `paper/reference/<table>.csv` (row, column, value, standard
//! error where the paper gives one, source), copied from the paper and the official READMEs and
//! compiled into the binary. Column ids are balms's (`cifar10-lt/if200`, `places-lt/few`).

use std::collections::BTreeMap;

/// The reference tables: name and CSV text.
const TABLES: [(&str, &str); 7] = [
    ("table2", include_str!("../paper/reference/table2.csv")),
    ("table3", include_str!("../paper/reference/table3.csv")),
    ("table4", include_str!("../paper/reference/table4.csv")),
    ("table5", include_str!("../paper/reference/table5.csv")),
    ("table7", include_str!("../paper/reference/table7.csv")),
    ("table8", include_str!("../paper/reference/table8.csv")),
    ("readme", include_str!("../paper/reference/readme.csv")),
];

/// One number of the paper.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    /// Row as the paper names it.
    pub row: String,
    /// balms column id.
    pub column: String,
    /// The paper's number as printed, in percent: top-1 or many/medium/few accuracy (Table 4: AP).
    pub value: f64,
    /// Its standard error over 3 runs, where the paper gives one.
    pub std_err: Option<f64>,
    /// The value and standard error as the paper prints them (`90.0 ± 0.2`).
    pub text: String,
    /// The CSV's `source` field: the paper table (e.g. `Ren et al. 2020 Table 2`) or the official
    /// README and config.
    pub source: String,
}

/// A reference table, rows in the paper's order.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// `table2`, `readme`, ...
    pub name: String,
    /// Its values, in file order.
    pub values: Vec<Value>,
}

impl Table {
    /// The named table.
    ///
    /// # Errors
    /// An unknown name (listing the known ones) or a malformed line (naming it).
    pub fn named(name: &str) -> Result<Table, String> {
        let (_, text) = TABLES.iter().find(|(n, _)| *n == name).ok_or_else(|| {
            let known: Vec<&str> = TABLES.iter().map(|(n, _)| *n).collect();
            format!("no reference table `{name}` (known: {})", known.join(", "))
        })?;
        parse(name, text)
    }

    /// Row names in the paper's order.
    #[must_use]
    pub fn rows(&self) -> Vec<&str> {
        let mut rows: Vec<&str> = Vec::new();
        for v in &self.values {
            if !rows.contains(&v.row.as_str()) {
                rows.push(&v.row);
            }
        }
        rows
    }

    /// Whether the table reports many/medium/few-shot accuracy (Table 3).
    #[must_use]
    pub fn has_groups(&self) -> bool {
        self.values.iter().any(|v| v.column.ends_with("/many"))
    }

    /// The value at `row`, `column`.
    #[must_use]
    pub fn get(&self, row: &str, column: &str) -> Option<&Value> {
        self.values.iter().find(|v| v.row == row && v.column == column)
    }
}

/// Names of the reference tables.
#[must_use]
pub fn names() -> Vec<&'static str> {
    TABLES.iter().map(|(n, _)| *n).collect()
}

fn parse(name: &str, text: &str) -> Result<Table, String> {
    let mut values = Vec::new();
    let mut seen = BTreeMap::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let at = || format!("paper/reference/{name}.csv line {}", i + 1);
        let fields: Vec<&str> = line.split(',').collect();
        let [row, column, value, std_err, source] = fields[..] else {
            return Err(format!("{}: expected 5 fields, found {}", at(), fields.len()));
        };
        let number =
            |s: &str| s.parse::<f64>().map_err(|_| format!("{}: `{s}` is not a number", at()));
        let value = Value {
            row: row.to_string(),
            column: column.to_string(),
            value: number(value)?,
            std_err: if std_err.is_empty() { None } else { Some(number(std_err)?) },
            text: if std_err.is_empty() {
                value.to_string()
            } else {
                format!("{value} ± {std_err}")
            },
            source: source.to_string(),
        };
        if seen.insert((row.to_string(), column.to_string()), i).is_some() {
            return Err(format!("{}: `{row}` at `{column}` twice", at()));
        }
        values.push(value);
    }
    Ok(Table { name: name.to_string(), values })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cells typed again from the paper (and its README), independently of the CSV files, so
    /// that a transcription error in either shows.
    #[test]
    fn spot_checks_against_the_paper() {
        let check = |table: &str, row: &str, column: &str, value: f64, se: Option<f64>| {
            let t = Table::named(table).unwrap();
            let v = t.get(row, column).unwrap_or_else(|| panic!("{table}: {row} at {column}"));
            assert_eq!((v.value, v.std_err), (value, se), "{table}: {row} at {column}");
        };
        check("table2", "BALMS", "cifar10-lt/if200", 81.5, Some(0.0));
        check("table2", "Class Balanced Loss", "cifar100-lt/if10", 59.8, Some(1.1));
        check("table2", "CBS", "cifar10-lt/if100", 77.8, Some(2.2));
        check("table5", "Balanced Softmax + CBS + DT", "cifar100-lt/if200", 42.0, Some(0.0));
        check("table5", "Balanced Softmax 1/4 + DT + MS", "cifar10-lt/if200", 76.2, Some(0.4));
        check("table3", "BALMS", "places-lt/few", 31.6, None);
        check("table3", "cRT", "imagenet-lt/overall", 41.8, None);
        check("table4", "BALMS", "lvis-v0.5/APr", 19.6, None);
        check("table8", "Softmax+CBS / Balanced Softmax", "cifar10-lt/if200", 68.24, None);
        check("table7", "LDAM-DRW", "cifar100-lt/if100", 42.04, None);
        check("readme", "BALMS", "places-lt/overall", 38.3, None);
        check("readme", "Balanced Softmax (decouple)", "cifar100-lt/if200", 47.2, None);
        // Shapes: Table 2 is 10 rows by 6 columns; Table 3's Equalization Loss has only overall.
        let t2 = Table::named("table2").unwrap();
        assert_eq!((t2.rows().len(), t2.values.len()), (10, 60));
        let t3 = Table::named("table3").unwrap();
        assert_eq!(t3.values.iter().filter(|v| v.row == "Equalization Loss").count(), 1);
        assert!(Table::named("table6").unwrap_err().contains("known: table2"));
    }

    #[test]
    fn malformed_lines_are_named() {
        let err =
            parse("x", "row,column,value,std_err,source\na,b,1.0,,s\na,b,zwei,,s\n").unwrap_err();
        assert!(err.contains("paper/reference/x.csv line 3: `zwei` is not a number"), "{err}");
        let twice = parse("x", "h\na,b,1,,s\na,b,2,,s\n").unwrap_err();
        assert!(twice.contains("twice"), "{twice}");
    }
}
