module mamba3rt

go 1.19
